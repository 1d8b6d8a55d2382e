//! Child processes of the test binary: a test re-runs one test of its own
//! binary with an environment of its choosing (the default cache reads the
//! environment once per process, so each configuration needs a process).

use std::process::Command;

/// What a child printed.
pub struct ChildRun {
    pub stdout: String,
    pub stderr: String,
}

impl ChildRun {
    /// Everything the child printed, both streams.
    pub fn output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// The text after `TAG ` on the line the child reported it (the harness
    /// may print `test name ... ` before it on the same line).
    pub fn report(&self, tag: &str) -> &str {
        let marker = format!("{tag} ");
        self.stdout
            .lines()
            .find_map(|l| l.find(&marker).map(|i| &l[i + marker.len()..]))
            .unwrap_or_else(|| panic!("the child reported no `{tag}`:\n{}", self.output()))
    }

    /// The value of `name=` in the report `tag` (values hold no spaces,
    /// except the last, which runs to the end of the line).
    pub fn field(&self, tag: &str, name: &str) -> String {
        let report = self.report(tag);
        let start = report
            .find(&format!("{name}="))
            .unwrap_or_else(|| panic!("no `{name}=` in `{report}`"))
            + name.len()
            + 1;
        let rest = &report[start..];
        match rest.find(" ") {
            Some(end) if rest[end..].contains('=') => rest[..end].to_string(),
            _ => rest.to_string(),
        }
    }
}

/// Runs the test `test` of this binary alone, in a child process whose
/// environment is this one's without any `CACHEWRIGHT_*` variable, plus
/// `env`. Fails the calling test if the child fails.
pub fn run_test(test: &str, env: &[(&str, &str)]) -> ChildRun {
    let mut cmd = Command::new(std::env::current_exe().expect("the test binary"));
    cmd.args(["--exact", test, "--nocapture", "--test-threads=1"]);
    for (name, _) in std::env::vars() {
        if name.starts_with("CACHEWRIGHT_") {
            cmd.env_remove(name);
        }
    }
    cmd.envs(env.iter().copied());
    let out = cmd.output().expect("the test binary runs");
    let run = ChildRun {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        out.status.success(),
        "the child `{test}` failed:\n{}",
        run.output()
    );
    run
}
