//! [`api_words!`]: enums of the words the API carries as strings — condition types,
//! condition reasons, phases — so that controllers name and compare them as values,
//! never as string literals.
//!
//! # Guarantees
//! - Each variant reads in the API exactly as it is named (`as_str`, `Display`).
//! - A `String` or `str` compares equal to the variant it spells (`c.reason == AppReason::Built`).

/// Defines an enum of API words: `Debug, Clone, Copy, PartialEq, Eq, Hash`, a `const fn
/// as_str`, `Display`, and comparisons with `str` and `String`. Further attributes (docs,
/// serde derives) pass through.
#[macro_export]
macro_rules! api_words {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// The word as it reads in the API.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => stringify!($variant)),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }
    };
}

#[cfg(test)]
mod tests {
    api_words! {
        /// A test enum.
        enum Word {
            /// One.
            FirstWord,
            /// Two.
            Second,
        }
    }

    #[test]
    fn words_read_and_compare_as_named() {
        assert_eq!(Word::FirstWord.as_str(), "FirstWord");
        assert_eq!(Word::Second.to_string(), "Second");
        let second = String::from("Second");
        assert!(second == Word::Second);
        assert!(*"FirstWord" == Word::FirstWord);
        assert!(second != Word::FirstWord);
    }
}
