#[cachewright::bg_writer(key = "config", interval = 30)]
fn config<T: Default>() -> T {
    T::default()
}

fn main() {}
