use cachewright::{cache_write, cached};

#[cached(key = "user:<id>", ttl = 60)]
fn get_user(id: u64) -> Result<String, String> {
    Ok(format!("user {id}"))
}

#[cached(key = "user:<id>:async", ttl = 60)]
async fn get_user_async(id: u64) -> Option<String> {
    Some(format!("user {id}"))
}

#[cache_write(invalidate = ["user:<id>", "org:<org>"], before = true, buffer = "250ms", recache = [get_user(id)])]
fn rename(id: u64, org: &str, name: String) -> Result<String, String> {
    Ok(format!("{id}:{org}:{name}"))
}

#[cache_write(invalidate = ["user:<id>"], buffer_ms = 100, recache = [get_user(id), get_user_async(id)])]
async fn rename_async(id: u64, name: String) -> usize {
    name.len() + id as usize
}

struct Repo {
    tenant: String,
}

impl Repo {
    #[cache_write(invalidate = ["tenant:<self.tenant>:user:<id>"])]
    fn touch(&self, id: u64) {
        let _ = (&self.tenant, id);
    }
}

fn main() {
    assert_eq!(rename(1, "o", "n".into()), Ok("1:o:n".into()));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert_eq!(rt.block_on(rename_async(1, "ab".into())), 3);
    Repo { tenant: "t".into() }.touch(1);
}
