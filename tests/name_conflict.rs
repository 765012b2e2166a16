//! A name taken when `start` creates (Docker's 409) against the real
//! Docker Engine: the holder is this serviceset's own container made by a
//! create whose answer was lost, and `start` adopts it instead of leaving
//! two or failing (`plan::name_conflict` decides; its other answers are
//! pure tests). The binary under test has the `failpoints` feature.

#[path = "support/stack.rs"]
mod stack;
mod support;

use stack::*;
use support::*;

#[test]
fn a_create_whose_answer_was_lost_is_adopted_on_the_409() {
    if !require_docker() {
        return;
    }
    let s = Stack::new();
    let point = format!("after:create:{}", s.web());
    let out = s
        .command(&["start"])
        .env("TELEFIG_FAILPOINT_ERROR", &point)
        .output()
        .unwrap();
    assert!(
        text(&out).contains(&format!("failpoint: failing once at {point}")),
        "the answer to web's create was lost: {}",
        text(&out)
    );
    assert_exit(&out, 0);
    assert_eq!(s.container_names(), s.wanted_names(), "one web, adopted");
    let web = inspect(&s.web());
    assert_eq!(web["State"]["Running"], true);
    assert!(
        !text(&out).contains("retrying"),
        "adopted in the same attempt: {}",
        text(&out)
    );
    let again = s.start(&[]);
    assert_exit(&again, 0);
    assert!(text(&again).contains("5 unchanged"), "{}", text(&again));
}
