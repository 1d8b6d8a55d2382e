#[cachewright::bg_writer(key = "config", interval = 30)]
fn config() {}

fn main() {}
