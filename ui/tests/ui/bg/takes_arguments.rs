#[cachewright::bg_writer(key = "config", interval = 30)]
fn config(region: u32) -> u32 {
    region
}

fn main() {}
