//! Classification trees (CART, Gini), grown as scikit-learn's `DecisionTreeClassifier` grows them with its
//! defaults and `max_depth`, `min_samples_leaf`, `min_impurity_decrease`: features as float32, a split between
//! two adjacent distinct values at their midpoint (`x <= threshold` goes left), the split with the largest
//! impurity decrease, a node left whole when it is pure, at the depth limit, too small to give two leaves, or
//! when no split decreases impurity by the minimum. Ties go to the first feature (in the columns' order), then
//! the lowest threshold (scikit-learn breaks ties between features by a random order). Pure Rust.

use crate::error::{Result, SegError};

/// Values closer than this are one value (scikit-learn's FEATURE_THRESHOLD).
const SAME_VALUE: f64 = 1e-7;
/// scikit-learn's EPSILON in the stopping tests.
const EPSILON: f64 = f64::EPSILON;

#[derive(Debug, Clone)]
pub struct Params {
    pub max_depth: usize,
    pub min_leaf: usize,
    pub min_impurity_decrease: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    Leaf {
        rows: usize,
        positives: usize,
    },
    Split {
        rows: usize,
        positives: usize,
        column: usize,
        threshold: f64,
        /// `x <= threshold`
        left: Box<Node>,
        right: Box<Node>,
    },
}

impl Node {
    pub fn rows(&self) -> usize {
        match self {
            Node::Leaf { rows, .. } | Node::Split { rows, .. } => *rows,
        }
    }
    pub fn positives(&self) -> usize {
        match self {
            Node::Leaf { positives, .. } | Node::Split { positives, .. } => *positives,
        }
    }
}

fn gini(rows: usize, positives: usize) -> f64 {
    if rows == 0 {
        return 0.0;
    }
    let p = positives as f64 / rows as f64;
    1.0 - p * p - (1.0 - p) * (1.0 - p)
}

/// Grows the tree over `columns` (each a column of the design, one value per row) and the outcomes `y`.
pub fn grow(columns: &[Vec<f32>], y: &[bool], params: &Params) -> Result<Node> {
    if y.is_empty() {
        return Err(SegError::invalid_argument(
            "no rows to grow a tree on",
            "rows with a NULL outcome or feature are left out",
        ));
    }
    if params.min_leaf < 1 || params.max_depth < 1 || params.max_depth > 32 {
        return Err(SegError::invalid_argument(
            "a tree needs max_depth between 1 and 32 and min_leaf ≥ 1",
            "e.g. max_depth => 3, min_leaf => 100",
        ));
    }
    if !(params.min_impurity_decrease >= 0.0 && params.min_impurity_decrease.is_finite()) {
        return Err(SegError::invalid_argument(
            "min_impurity_decrease must be a finite number ≥ 0",
            "0 splits whenever a split is allowed",
        ));
    }
    let all: Vec<usize> = (0..y.len()).collect();
    Ok(node(columns, y, params, &all, 0, y.len()))
}

fn node(
    columns: &[Vec<f32>],
    y: &[bool],
    params: &Params,
    rows: &[usize],
    depth: usize,
    total: usize,
) -> Node {
    crate::interrupt::check();
    let n = rows.len();
    let positives = rows.iter().filter(|&&i| y[i]).count();
    let impurity = gini(n, positives);
    let leaf = Node::Leaf { rows: n, positives };
    if depth >= params.max_depth || n < 2 || n < 2 * params.min_leaf || impurity <= EPSILON {
        return leaf;
    }
    // the best split: largest proxy improvement −(n_l·gini_l + n_r·gini_r), first found on ties
    let mut best: Option<(f64, usize, f64)> = None;
    let mut sorted: Vec<(f32, bool)> = Vec::with_capacity(n);
    for (c, column) in columns.iter().enumerate() {
        sorted.clear();
        sorted.extend(rows.iter().map(|&i| (column[i], y[i])));
        sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
        if sorted[n - 1].0 as f64 <= sorted[0].0 as f64 + SAME_VALUE {
            continue; // constant in this node
        }
        let mut left_pos = 0usize;
        for p in 1..n {
            left_pos += sorted[p - 1].1 as usize;
            let (prev, here) = (sorted[p - 1].0 as f64, sorted[p].0 as f64);
            if here <= prev + SAME_VALUE || p < params.min_leaf || n - p < params.min_leaf {
                continue;
            }
            let right_pos = positives - left_pos;
            let proxy = -(p as f64 * gini(p, left_pos)) - ((n - p) as f64 * gini(n - p, right_pos));
            if best.is_none_or(|b| proxy > b.0) {
                let mut threshold = prev / 2.0 + here / 2.0;
                if threshold == here || threshold.is_infinite() {
                    threshold = prev;
                }
                best = Some((proxy, c, threshold));
            }
        }
    }
    let Some((_, column, threshold)) = best else {
        return leaf;
    };
    let (left, right): (Vec<usize>, Vec<usize>) = rows
        .iter()
        .partition(|&&i| columns[column][i] as f64 <= threshold);
    let (nl, nr) = (left.len() as f64, right.len() as f64);
    let lp = left.iter().filter(|&&i| y[i]).count();
    let improvement = (n as f64 / total as f64)
        * (impurity
            - nr / n as f64 * gini(right.len(), positives - lp)
            - nl / n as f64 * gini(left.len(), lp));
    if improvement + EPSILON < params.min_impurity_decrease {
        return leaf;
    }
    Node::Split {
        rows: n,
        positives,
        column,
        threshold,
        left: Box::new(node(columns, y, params, &left, depth + 1, total)),
        right: Box::new(node(columns, y, params, &right, depth + 1, total)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_the_midpoint_and_respects_the_leaf_size() {
        // y is true exactly for x > 3: one split at 3.5
        let x: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let y: Vec<bool> = (0..8).map(|i| i > 3).collect();
        let p = Params {
            max_depth: 3,
            min_leaf: 1,
            min_impurity_decrease: 0.0,
        };
        let tree = grow(&[x.clone()], &y, &p).unwrap();
        match &tree {
            Node::Split {
                threshold,
                left,
                right,
                ..
            } => {
                assert_eq!(*threshold, 3.5);
                assert_eq!(
                    (
                        left.rows(),
                        left.positives(),
                        right.rows(),
                        right.positives()
                    ),
                    (4, 0, 4, 4)
                );
            }
            _ => panic!("no split"),
        }
        // leaves of at least 5 rows: no split possible in 8 rows
        let big = Params { min_leaf: 5, ..p };
        assert!(matches!(
            grow(&[x], &y, &big).unwrap(),
            Node::Leaf {
                rows: 8,
                positives: 4
            }
        ));
    }

    #[test]
    fn ties_go_to_the_first_feature() {
        let a: Vec<f32> = vec![0.0, 0.0, 1.0, 1.0];
        let b = a.clone();
        let y = vec![false, false, true, true];
        let p = Params {
            max_depth: 1,
            min_leaf: 1,
            min_impurity_decrease: 0.0,
        };
        assert!(matches!(
            grow(&[a, b], &y, &p).unwrap(),
            Node::Split { column: 0, .. }
        ));
    }
}
