#[cachewright::bg_writer(key = "config", interval = "soon")]
fn config() -> u32 {
    1
}

fn main() {}
