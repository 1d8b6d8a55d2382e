// One cached function owns one typed cache, so it cannot be generic; the
// error points at the type parameter.
#[cachewright::cached(key = "item:<id>", ttl = 60)]
fn get_item<T: Default + Clone + Send + Sync + 'static>(id: u64) -> T {
    let _ = id;
    T::default()
}

fn main() {}
