//! Every GPU operation against its plain-Rust CPU reference: the cases of
//! `shakeshake::checks` (the same list `shakeshake selftest` runs), on every device of
//! `common::gpus()`. One test an op; one test binary, so one device serves them all.

#[path = "../common/mod.rs"]
mod common;

use common::*;
use shakeshake::checks::CASES;

/// Every case of `op` on every device; a failure lists every check that failed.
fn passes_everywhere(op: &str) {
    on_every_gpu(|| {
        let gpu = gpu();
        let cases: Vec<_> = CASES.iter().filter(|c| c.op == op).collect();
        assert!(!cases.is_empty(), "no cases of {op}");
        let mut failed = vec![];
        for case in cases {
            let checks = (case.run)(gpu);
            assert!(!checks.is_empty(), "{op}: {} checks nothing", case.name);
            failed.extend(checks.into_iter().filter(|c| !c.passed()).map(|c| {
                format!(
                    "  {} {} {} [{}]: error {:.3e} over tolerance {:.1e}",
                    c.op, c.pass, c.variant, c.shape, c.max_error, c.tolerance
                )
            }));
        }
        assert!(failed.is_empty(), "on {}:\n{}", gpu.describe(), failed.join("\n"));
    });
}

const TESTED: &[&str] =
    &["conv2d", "batch_norm", "relu", "shake", "pool", "linear", "cross_entropy", "sgd", "prepare_batch"];

#[test]
fn every_op_of_the_case_list_is_tested() {
    for case in CASES {
        assert!(TESTED.contains(&case.op), "{} has cases but no test here", case.op);
    }
}

#[test]
fn conv2d() {
    passes_everywhere("conv2d");
}

#[test]
fn batch_norm() {
    passes_everywhere("batch_norm");
}

#[test]
fn relu() {
    passes_everywhere("relu");
}

#[test]
fn shake() {
    passes_everywhere("shake");
}

#[test]
fn pool() {
    passes_everywhere("pool");
}

#[test]
fn linear() {
    passes_everywhere("linear");
}

#[test]
fn cross_entropy() {
    passes_everywhere("cross_entropy");
}

#[test]
fn sgd() {
    passes_everywhere("sgd");
}

#[test]
fn prepare_batch() {
    passes_everywhere("prepare_batch");
}
