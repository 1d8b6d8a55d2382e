#[cachewright::bg_writer(key = "config", interval = 30, every = 5)]
fn config() -> u32 {
    1
}

fn main() {}
