//! ECR's model as the facade and the emulator share it: the actions (every
//! RPC of `ecr.v1.EcrService`, one row each) here, ECR's patterns and limits
//! in [`constraints`]. It imports nothing else of the crate, so that both
//! sides can use it and neither spells a name or a number again.
//!
//! Adding an action starts with its row in [`actions!`] below; the tests fail
//! until the proto, the scope and the emulator agree with the table.

pub mod constraints;

pub use constraints::*;

/// The gRPC service whose methods the actions are.
pub const SERVICE: &str = "ecr.v1.EcrService";

/// Declares [`Action`]: one row per RPC, `Name { mutating, transfer }`.
macro_rules! actions {
    ($($name:ident { mutating: $mutating:literal, transfer: $transfer:literal },)+) => {
        /// An RPC of `ecr.v1.EcrService`: the action a policy grants, the
        /// `method` label of the RPC metrics, and (but for the transfers)
        /// the ECR operation of the same name.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Action {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $name,
            )+
        }

        impl Action {
            /// Every action, in alphabetical order.
            pub const ALL: &'static [Action] = &[$(Action::$name),+];

            /// The RPC name, which is also the policy's action name and the
            /// upstream metrics' `action` label (`CreateRepository`).
            pub const fn name(self) -> &'static str {
                match self {
                    $(Action::$name => stringify!($name),)+
                }
            }

            /// The gRPC method path (`/ecr.v1.EcrService/CreateRepository`),
            /// the RPC metrics' `method` label.
            pub const fn method(self) -> &'static str {
                match self {
                    $(Action::$name => concat!("/ecr.v1.EcrService/", stringify!($name)),)+
                }
            }

            /// Whether the action changes the registry (refused by
            /// `--read-only`).
            pub const fn is_mutating(self) -> bool {
                match self {
                    $(Action::$name => $mutating,)+
                }
            }

            /// Whether the RPC moves layer bytes, so that its deadline may
            /// reach `--max-transfer-timeout`. The transfers are the facade's
            /// own streaming RPCs; every other action is an ECR operation.
            pub const fn is_transfer(self) -> bool {
                match self {
                    $(Action::$name => $transfer,)+
                }
            }
        }
    };
}

actions! {
    BatchCheckLayerAvailability { mutating: false, transfer: false },
    BatchDeleteImage { mutating: true, transfer: false },
    BatchGetImage { mutating: false, transfer: false },
    CompleteLayerUpload { mutating: true, transfer: false },
    CreateRepository { mutating: true, transfer: false },
    DeleteRepository { mutating: true, transfer: false },
    DeleteRepositoryPolicy { mutating: true, transfer: false },
    DescribeImages { mutating: false, transfer: false },
    DescribeRepositories { mutating: false, transfer: false },
    // The token is a `docker login` password with the facade's own IAM
    // rights (push and delete included): handing it out is never read-only.
    GetAuthorizationToken { mutating: true, transfer: false },
    GetDownloadUrlForLayer { mutating: false, transfer: false },
    GetRepositoryPolicy { mutating: false, transfer: false },
    InitiateLayerUpload { mutating: true, transfer: false },
    ListImages { mutating: false, transfer: false },
    PullLayer { mutating: false, transfer: true },
    PushLayer { mutating: true, transfer: true },
    PutImage { mutating: true, transfer: false },
    SetRepositoryPolicy { mutating: true, transfer: false },
    UploadLayerPart { mutating: true, transfer: false },
}

impl Action {
    /// The action of an RPC name (`CreateRepository`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|action| action.name() == name)
    }

    /// The action of a gRPC method path (`/ecr.v1.EcrService/CreateRepository`).
    pub fn from_method(path: &str) -> Option<Self> {
        Self::ALL
            .iter()
            .copied()
            .find(|action| action.method() == path)
    }
}

#[cfg(test)]
mod tests;
