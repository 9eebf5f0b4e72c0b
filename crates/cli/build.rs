//! The tools the end-to-end tests need: where one is missing (outside CI) the
//! tests that need it are compiled as ignored.

use orchestra_test_tools::{Tool, emit};

fn main() {
    emit(&[
        Tool {
            cfg: "missing_age",
            programs: &["age"],
        },
        Tool {
            cfg: "missing_redis",
            programs: &["redis-server", "redis-cli"],
        },
        Tool {
            cfg: "missing_postgres",
            programs: &["pg_dump", "/usr/lib/postgresql/*/bin/postgres"],
        },
        Tool {
            cfg: "missing_promtool",
            programs: &["promtool"],
        },
        Tool {
            cfg: "missing_docker_compose",
            programs: &["docker-compose"],
        },
    ]);
}
