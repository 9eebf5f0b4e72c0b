//! The differential conformance test runs nginx: where it is missing (outside
//! CI) it is compiled as ignored.

use orchestra_test_tools::{Tool, emit};

fn main() {
    emit(&[Tool {
        cfg: "missing_nginx",
        programs: &["/usr/sbin/nginx|nginx"],
    }]);
}
