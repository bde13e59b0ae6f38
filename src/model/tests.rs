//! The action table against the proto: every RPC has exactly one row.

use prost::Message;

use super::*;

#[test]
fn every_rpc_of_the_service_has_exactly_one_row() {
    let set = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET).unwrap();
    let mut rpcs = Vec::new();
    for file in set.file.iter().filter(|f| f.package() == "ecr.v1") {
        for service in &file.service {
            assert_eq!(format!("ecr.v1.{}", service.name()), SERVICE);
            rpcs.extend(service.method.iter().map(|m| m.name().to_owned()));
        }
    }
    rpcs.sort();
    let rows: Vec<&str> = Action::ALL.iter().map(|a| a.name()).collect();
    assert_eq!(rpcs, rows, "one row per rpc, in alphabetical order");
}

#[test]
fn names_and_methods_round_trip() {
    for &action in Action::ALL {
        assert_eq!(action.method(), format!("/{SERVICE}/{}", action.name()));
        assert_eq!(Action::from_name(action.name()), Some(action));
        assert_eq!(Action::from_method(action.method()), Some(action));
    }
    assert_eq!(Action::from_name("Nope"), None);
    assert_eq!(Action::from_method("/ecr.v1.EcrService/Nope"), None);
    assert_eq!(Action::from_method("CreateRepository"), None);
}

#[test]
fn the_flags_of_the_rows() {
    let transfers: Vec<_> = Action::ALL.iter().filter(|a| a.is_transfer()).collect();
    assert_eq!(transfers, [&Action::PullLayer, &Action::PushLayer]);
    let mutating = Action::ALL.iter().filter(|a| a.is_mutating()).count();
    assert_eq!(mutating, 11);
    assert!(Action::GetAuthorizationToken.is_mutating());
    assert!(!Action::DescribeImages.is_mutating());
}
