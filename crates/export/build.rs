//! The schema validation tests need kubernetes-validate: where it is missing
//! (outside CI) they are compiled as ignored.

use orchestra_test_tools::{Tool, emit};

fn main() {
    emit(&[Tool {
        cfg: "missing_kubernetes_validate",
        programs: &["kubernetes-validate"],
    }]);
}
