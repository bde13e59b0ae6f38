//! The 17 ECR operations the emulator answers, by their wire names.

use std::fmt;

use crate::model::LAYER_PART_MAX_BYTES;

macro_rules! operations {
    ($($name:ident),* $(,)?) => {
        /// An ECR operation, named as in `X-Amz-Target`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Operation {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                $name,
            )*
        }

        impl Operation {
            /// Every operation, in alphabetical order.
            pub const ALL: &'static [Operation] = &[$(Operation::$name),*];

            /// The wire name (`DescribeRepositories`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Operation::$name => stringify!($name),)*
                }
            }
        }
    };
}

operations!(
    BatchCheckLayerAvailability,
    BatchDeleteImage,
    BatchGetImage,
    CompleteLayerUpload,
    CreateRepository,
    DeleteRepository,
    DeleteRepositoryPolicy,
    DescribeImages,
    DescribeRepositories,
    GetAuthorizationToken,
    GetDownloadUrlForLayer,
    GetRepositoryPolicy,
    InitiateLayerUpload,
    ListImages,
    PutImage,
    SetRepositoryPolicy,
    UploadLayerPart,
);

/// How many operations there are.
pub const OPERATION_COUNT: usize = Operation::ALL.len();

/// The `X-Amz-Target` prefix of every ECR operation.
pub const TARGET_PREFIX: &str = "AmazonEC2ContainerRegistry_V20150921.";

impl Operation {
    /// The operation of a wire name, if it is one of the 17.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|op| op.name() == name)
    }

    /// The operation of an `X-Amz-Target` header value.
    pub fn from_target(target: &str) -> Option<Self> {
        target.strip_prefix(TARGET_PREFIX).and_then(Self::from_name)
    }

    /// Position in [`Operation::ALL`] (for per-operation counters).
    pub fn index(self) -> usize {
        self as usize
    }

    /// Largest request body accepted, in bytes, before answering 413.
    ///
    /// UploadLayerPart carries up to 20 MiB base64-encoded (4/3 larger);
    /// PutImage up to 4 Mi manifest characters, JSON-escaped inside the
    /// request; everything else is a few small members (the largest is 100
    /// digests of ≤ 1000 characters).
    pub fn body_limit(self) -> usize {
        const SLACK: usize = 64 * 1024;
        match self {
            Self::UploadLayerPart => LAYER_PART_MAX_BYTES.div_ceil(3) * 4 + SLACK,
            Self::PutImage => 10 * 1024 * 1024,
            _ => 2 * 1024 * 1024,
        }
    }
}

impl fmt::Display for Operation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn all_seventeen_round_trip() {
        assert_eq!(Operation::ALL.len(), 17);
        for (i, op) in Operation::ALL.iter().enumerate() {
            assert_eq!(op.index(), i);
            assert_eq!(Operation::from_name(op.name()), Some(*op));
            let target = format!("{TARGET_PREFIX}{op}");
            assert_eq!(Operation::from_target(&target), Some(*op));
        }
        assert_eq!(Operation::from_name("ListTagsForResource"), None);
        assert_eq!(Operation::from_target("ListImages"), None);
    }

    #[test]
    fn every_ecr_action_of_the_model_is_an_operation() {
        // The model's actions but the facade's own transfers are ECR's.
        let ecr: Vec<&str> = crate::model::Action::ALL
            .iter()
            .filter(|action| !action.is_transfer())
            .map(|action| action.name())
            .collect();
        let answered: Vec<&str> = Operation::ALL.iter().map(|op| op.name()).collect();
        assert_eq!(answered, ecr);
    }

    #[test]
    fn upload_part_limit_fits_a_full_base64_part() {
        let encoded = LAYER_PART_MAX_BYTES.div_ceil(3) * 4;
        assert!(Operation::UploadLayerPart.body_limit() > encoded);
        assert!(Operation::UploadLayerPart.body_limit() < encoded + 1024 * 1024);
        assert!(Operation::DescribeRepositories.body_limit() < encoded);
    }
}
