//! `NonEmpty<T>`: a list information element whose status is M ("a list of one or more").

use serde::{Deserialize, Serialize};

/// A list that holds at least one element. Deserialising an empty list fails with a
/// message that says so, which is how a mandatory "list of one or more" IE is enforced.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "Vec<T>", into = "Vec<T>")]
#[serde(bound(
    serialize = "T: Clone + Serialize",
    deserialize = "T: Deserialize<'de>"
))]
pub struct NonEmpty<T>(Vec<T>);

/// The error for an empty list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the list must hold at least one element")]
pub struct EmptyList;

impl<T> NonEmpty<T> {
    /// A list of one.
    pub fn one(item: T) -> Self {
        Self(vec![item])
    }

    /// Wraps a vector, refusing an empty one.
    pub fn new(items: Vec<T>) -> Result<Self, EmptyList> {
        if items.is_empty() {
            Err(EmptyList)
        } else {
            Ok(Self(items))
        }
    }

    /// The first element (there always is one).
    pub fn first(&self) -> &T {
        &self.0[0]
    }

    /// The elements.
    pub fn as_slice(&self) -> &[T] {
        &self.0
    }

    /// Iterates over the elements.
    pub fn iter(&self) -> std::slice::Iter<'_, T> {
        self.0.iter()
    }

    /// The number of elements (at least one).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always false; present so clippy's `len_without_is_empty` is satisfied honestly.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The elements as a vector.
    pub fn into_vec(self) -> Vec<T> {
        self.0
    }
}

impl<T> TryFrom<Vec<T>> for NonEmpty<T> {
    type Error = EmptyList;
    fn try_from(items: Vec<T>) -> Result<Self, EmptyList> {
        Self::new(items)
    }
}

impl<T> From<NonEmpty<T>> for Vec<T> {
    fn from(list: NonEmpty<T>) -> Vec<T> {
        list.0
    }
}

impl<'a, T> IntoIterator for &'a NonEmpty<T> {
    type Item = &'a T;
    type IntoIter = std::slice::Iter<'a, T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl<T> IntoIterator for NonEmpty<T> {
    type Item = T;
    type IntoIter = std::vec::IntoIter<T>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}
