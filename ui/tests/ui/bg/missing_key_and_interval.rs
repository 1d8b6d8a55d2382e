#[cachewright::bg_writer(ttl = 60)]
fn daily_config() -> u32 {
    7
}

fn main() {}
