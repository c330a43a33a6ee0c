//! Topologies from the library (`shm_host::topology`), as the README shows
//! them: what the CLI's `pubsub` does, without the CLI.

use crate::common;

use shm_host::command::Status;
use shm_host::topology::{Role, Topology};

use shm_host::ShmHost;

#[test]
fn a_topology_runs_from_the_library() {
    let host = ShmHost::default();
    let mut topology = Topology::new(&host).unwrap();
    let publisher = topology.load(common::guest("pubsub-publisher")).unwrap();
    let subscriber = topology.load(common::guest("pubsub-subscriber")).unwrap();
    topology
        .topic("numbers")
        .publisher("publisher", publisher, &[])
        .subscriber("first", subscriber.clone(), &["numbers", "20"])
        .subscriber("second", subscriber, &["numbers", "20"]);
    let mut seen = Vec::new();
    let report = topology.run_with(|e| seen.push((e.role, e.name.clone())));
    assert!(report.succeeded(), "{report:?}");
    assert_eq!(seen.len(), 3);
    assert_eq!(report.ended.len(), 3);
    for name in ["first", "second"] {
        let s = report.statistics.guest(name).expect(name);
        assert_eq!(s.attaches, 20, "{name}: {s:?}");
        assert_eq!(s.copies, 0);
    }
    let table = report.statistics.to_string();
    assert!(table.starts_with("shm-host statistics:"), "{table}");
    assert!(table.contains("  first "), "{table}");
}

#[test]
fn a_report_says_who_failed_and_how() {
    let host = ShmHost::default();
    let mut topology = Topology::new(&host).unwrap();
    let publisher = topology.load(common::guest("red-team")).unwrap();
    let subscriber = topology.load(common::guest("pubsub-subscriber")).unwrap();
    topology
        .timeout(std::time::Duration::from_secs(2))
        .publisher("red", publisher, &["--attack", "fail"])
        .subscriber("first", subscriber, &["numbers", "20"]);
    let report = topology.run();
    assert!(!report.succeeded());
    let failed: Vec<_> = report
        .ended
        .iter()
        .filter(|e| !e.status.succeeded())
        .map(|e| (e.role, e.name.as_str(), e.status.clone()))
        .collect();
    // The publisher failed before it opened the topic: the subscriber
    // still waits for one, and is reported when the timeout passes.
    assert_eq!(
        failed,
        [(Role::Publisher, "red", Status::Failed(1, None))],
        "{report:?}"
    );
    assert_eq!(report.unfinished, ["first"]);
}
