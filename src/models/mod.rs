//! Discovery and prediction: k-means clustering, RFM summaries and customer-lifetime models. Pure Rust.

pub mod evaluate;
pub mod kmeans;
pub mod lifetime;
pub mod logistic;
pub mod optimize;
pub mod rfm;
pub mod tree;
