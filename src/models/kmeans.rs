//! k-means: greedy k-means++ seeding, Lloyd iterations, best of n_init runs by inertia, silhouette scores.
//! Deterministic for a seed. Points live in one flat row-major buffer.

use crate::error::{Result, SegError};

/// SplitMix64: small, fast and reproducible across platforms.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// n points of d features, row-major.
pub struct Points {
    pub d: usize,
    pub data: Vec<f64>,
}

impl Points {
    pub fn n(&self) -> usize {
        self.data.len().checked_div(self.d).unwrap_or(0)
    }
    pub fn row(&self, i: usize) -> &[f64] {
        &self.data[i * self.d..(i + 1) * self.d]
    }

    /// Puts the rows in ascending order of their values (feature by feature): a relation's rows come in no
    /// particular order (a distributed table's differ from run to run), and with the rows sorted, seeding,
    /// sums and ties, hence the clustering, depend only on the multiset of rows and the seed.
    pub fn sort_rows(&mut self) {
        let d = self.d;
        if d == 0 {
            return;
        }
        // f64::total_cmp's order as integers: the first feature's key orders most rows without a full comparison
        let key = |x: f64| {
            let bits = x.to_bits() as i64;
            bits ^ ((((bits >> 63) as u64) >> 1) as i64)
        };
        let row = |i: u32| &self.data[i as usize * d..(i as usize + 1) * d];
        let mut order: Vec<(i64, u32)> =
            (0..self.n() as u32).map(|i| (key(row(i)[0]), i)).collect();
        // rows that compare equal are the same bits, so an unstable sort loses nothing
        order.sort_unstable_by(|a, b| {
            a.0.cmp(&b.0).then_with(|| {
                row(a.1)
                    .iter()
                    .zip(row(b.1))
                    .map(|(x, y)| x.total_cmp(y))
                    .find(|o| o.is_ne())
                    .unwrap_or(std::cmp::Ordering::Equal)
            })
        });
        self.data = order
            .iter()
            .flat_map(|&(_, i)| row(i).iter().copied())
            .collect();
    }

    /// Centers each feature on its mean and divides by its (population) standard deviation, as scikit-learn's
    /// StandardScaler does; returns (center, scale). A constant feature keeps scale 1.
    pub fn standardize(&mut self) -> (Vec<f64>, Vec<f64>) {
        let (n, d) = (self.n() as f64, self.d);
        let mut center = vec![0.0; d];
        let mut scale = vec![0.0; d];
        for row in self.data.chunks_exact(d) {
            center.iter_mut().zip(row).for_each(|(c, x)| *c += x);
        }
        center.iter_mut().for_each(|c| *c /= n);
        for row in self.data.chunks_exact(d) {
            scale
                .iter_mut()
                .zip(row)
                .zip(&center)
                .for_each(|((s, x), c)| *s += (x - c).powi(2));
        }
        scale
            .iter_mut()
            .for_each(|s| *s = if *s > 0.0 { (*s / n).sqrt() } else { 1.0 });
        for i in 0..self.n() {
            for j in 0..d {
                self.data[i * d + j] = (self.data[i * d + j] - center[j]) / scale[j];
            }
        }
        (center, scale)
    }
}

fn sq_dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// The closest of the centers (row-major, d wide) and its squared distance; ties go to the lower index.
fn nearest(x: &[f64], centers: &[f64], d: usize) -> (usize, f64) {
    let mut best = (0, f64::INFINITY);
    for (c, center) in centers.chunks_exact(d).enumerate() {
        let dist = sq_dist(x, center);
        if dist < best.1 {
            best = (c, dist);
        }
    }
    best
}

#[derive(Debug, Clone)]
pub struct Clustering {
    /// k × d, row-major
    pub centroids: Vec<f64>,
    pub labels: Vec<usize>,
    pub sizes: Vec<usize>,
    /// within-cluster sum of squares, per cluster
    pub inertia: Vec<f64>,
}

impl Clustering {
    pub fn total_inertia(&self) -> f64 {
        self.inertia.iter().sum()
    }
    pub fn centroid(&self, c: usize, d: usize) -> &[f64] {
        &self.centroids[c * d..(c + 1) * d]
    }
}

/// Greedy k-means++: each new center is the best (lowest potential) of 2 + ln k candidates drawn in
/// proportion to squared distance from the centers so far.
fn seed_centers(p: &Points, k: usize, rng: &mut Rng) -> Vec<f64> {
    let (n, d) = (p.n(), p.d);
    let trials = 2 + (k as f64).ln() as usize;
    let mut centers = Vec::with_capacity(k * d);
    let first = (rng.next_f64() * n as f64) as usize;
    centers.extend_from_slice(p.row(first.min(n - 1)));
    let mut closest: Vec<f64> = (0..n).map(|i| sq_dist(p.row(i), &centers[..d])).collect();
    let mut potential: f64 = closest.iter().sum();
    for _ in 1..k {
        crate::interrupt::check();
        let mut best: Option<(f64, usize, Vec<f64>)> = None;
        for _ in 0..trials {
            let target = rng.next_f64() * potential;
            let mut acc = 0.0;
            let mut pick = n - 1;
            for (i, c) in closest.iter().enumerate() {
                acc += c;
                if acc > target {
                    pick = i;
                    break;
                }
            }
            let dists: Vec<f64> = (0..n)
                .map(|i| closest[i].min(sq_dist(p.row(i), p.row(pick))))
                .collect();
            let pot: f64 = dists.iter().sum();
            if best.as_ref().is_none_or(|b| pot < b.0) {
                best = Some((pot, pick, dists));
            }
        }
        let (pot, pick, dists) = best.expect("at least one trial");
        centers.extend_from_slice(p.row(pick));
        closest = dists;
        potential = pot;
    }
    centers
}

/// Lloyd iterations from `centers` until no label changes, the centers move less than `tol` (summed
/// squared shift, as scikit-learn measures it), or max_iter; then a last assignment so that labels, sizes
/// and inertia belong to the final centers.
fn lloyd(p: &Points, k: usize, mut centers: Vec<f64>, max_iter: usize, tol: f64) -> Clustering {
    let (n, d) = (p.n(), p.d);
    let mut labels = vec![usize::MAX; n];
    let mut sums = vec![0.0; k * d];
    let mut counts = vec![0usize; k];
    for _ in 0..max_iter {
        crate::interrupt::check();
        let mut changed = false;
        sums.iter_mut().for_each(|s| *s = 0.0);
        counts.iter_mut().for_each(|c| *c = 0);
        for (i, label) in labels.iter_mut().enumerate() {
            let x = p.row(i);
            let (best, _) = nearest(x, &centers, d);
            if *label != best {
                *label = best;
                changed = true;
            }
            counts[best] += 1;
            for j in 0..d {
                sums[best * d + j] += x[j];
            }
        }
        if !changed {
            break;
        }
        let previous = centers.clone();
        for c in 0..k {
            if counts[c] > 0 {
                for j in 0..d {
                    centers[c * d + j] = sums[c * d + j] / counts[c] as f64;
                }
            } else {
                // an empty cluster takes the point farthest from its center
                let far = (0..n)
                    .max_by(|&a, &b| {
                        let da = sq_dist(p.row(a), &centers[labels[a] * d..(labels[a] + 1) * d]);
                        let db = sq_dist(p.row(b), &centers[labels[b] * d..(labels[b] + 1) * d]);
                        da.total_cmp(&db)
                    })
                    .unwrap_or(0);
                centers[c * d..(c + 1) * d].copy_from_slice(p.row(far));
            }
        }
        if sq_dist(&previous, &centers) <= tol {
            break;
        }
    }
    let mut inertia = vec![0.0; k];
    counts.iter_mut().for_each(|c| *c = 0);
    for (i, label) in labels.iter_mut().enumerate() {
        let (best, best_d) = nearest(p.row(i), &centers, d);
        *label = best;
        counts[best] += 1;
        inertia[best] += best_d;
    }
    Clustering {
        centroids: centers,
        labels,
        sizes: counts,
        inertia,
    }
}

/// Convergence: centers moving less than this share of the data's mean feature variance (scikit-learn's default).
const TOLERANCE: f64 = 1e-4;

fn mean_variance(p: &Points) -> f64 {
    let (n, d) = (p.n() as f64, p.d);
    (0..d)
        .map(|j| {
            let mean = (0..p.n()).map(|i| p.data[i * d + j]).sum::<f64>() / n;
            (0..p.n())
                .map(|i| (p.data[i * d + j] - mean).powi(2))
                .sum::<f64>()
                / n
        })
        .sum::<f64>()
        / d as f64
}

/// Best of `n_init` seeded runs by total inertia.
pub fn kmeans(
    p: &Points,
    k: usize,
    seed: u64,
    n_init: usize,
    max_iter: usize,
) -> Result<Clustering> {
    if k < 1 {
        return Err(SegError::invalid_argument(
            format!("k must be at least 1, got {k}"),
            "",
        ));
    }
    if p.n() < k {
        return Err(SegError::invalid_argument(
            format!(
                "k-means with k = {k} needs at least {k} points, got {}",
                p.n()
            ),
            "choose a smaller k or check that the features are not NULL",
        ));
    }
    if n_init < 1 || max_iter < 1 {
        return Err(SegError::invalid_argument(
            "n_init and max_iter must be at least 1",
            "",
        ));
    }
    if p.data.iter().any(|x| !x.is_finite()) {
        return Err(SegError::invalid_argument(
            "k-means features must be finite numbers",
            "filter out NaN and infinite values",
        ));
    }
    let tol = TOLERANCE * mean_variance(p);
    let mut rng = Rng::new(seed);
    let mut best: Option<Clustering> = None;
    for _ in 0..n_init {
        let centers = seed_centers(p, k, &mut rng);
        let run = lloyd(p, k, centers, max_iter, tol);
        if best
            .as_ref()
            .is_none_or(|b| run.total_inertia() < b.total_inertia())
        {
            best = Some(run);
        }
    }
    Ok(best.expect("n_init >= 1"))
}

/// Mean silhouette coefficient of a labelling; a point alone in its cluster scores 0.
pub fn silhouette(p: &Points, labels: &[usize], k: usize) -> f64 {
    let n = p.n();
    if n < 2 || k < 2 {
        return 0.0;
    }
    let mut sizes = vec![0usize; k];
    labels.iter().for_each(|&l| sizes[l] += 1);
    let mut total = 0.0;
    let mut sums = vec![0.0; k];
    for i in 0..n {
        crate::interrupt::check();
        sums.iter_mut().for_each(|s| *s = 0.0);
        for j in 0..n {
            if i != j {
                sums[labels[j]] += sq_dist(p.row(i), p.row(j)).sqrt();
            }
        }
        let own = labels[i];
        if sizes[own] <= 1 {
            continue;
        }
        let a = sums[own] / (sizes[own] - 1) as f64;
        let b = (0..k)
            .filter(|&c| c != own && sizes[c] > 0)
            .map(|c| sums[c] / sizes[c] as f64)
            .fold(f64::INFINITY, f64::min);
        if b.is_finite() && a.max(b) > 0.0 {
            total += (b - a) / a.max(b);
        }
    }
    total / n as f64
}

/// A seeded sample of `size` distinct row indexes (all rows when there are fewer).
pub fn sample_rows(n: usize, size: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..n).collect();
    if n <= size {
        return idx;
    }
    let mut rng = Rng::new(seed);
    for i in 0..size {
        let j = i + (rng.next_f64() * (n - i) as f64) as usize;
        idx.swap(i, j.min(n - 1));
    }
    idx.truncate(size);
    idx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blobs() -> Points {
        // three well separated groups of 4 points
        let mut data = vec![];
        for (cx, cy) in [(0.0, 0.0), (10.0, 0.0), (0.0, 10.0)] {
            for (dx, dy) in [(0.1, 0.1), (-0.1, 0.1), (0.1, -0.1), (-0.1, -0.1)] {
                data.extend([cx + dx, cy + dy]);
            }
        }
        Points { d: 2, data }
    }

    #[test]
    fn finds_separated_clusters_deterministically() {
        let p = blobs();
        let a = kmeans(&p, 3, 7, 5, 100).unwrap();
        let b = kmeans(&p, 3, 7, 5, 100).unwrap();
        assert_eq!(a.labels, b.labels);
        assert_eq!(a.sizes.to_vec(), vec![4, 4, 4]);
        // each cluster: 4 points at distance² 0.02 from their center
        assert!((a.total_inertia() - 12.0 * 0.02).abs() < 1e-12);
        assert!(silhouette(&p, &a.labels, 3) > 0.95);
    }

    #[test]
    fn sorted_rows_cluster_alike_whatever_their_order() {
        // overlapping groups, where seeding decides the optimum reached
        let mut data = vec![];
        for i in 0..60 {
            let x = (i * 37 % 60) as f64 / 7.0;
            data.extend([x, (x * 1.7).sin() * 3.0 + (i % 4) as f64]);
        }
        let mut a = Points {
            d: 2,
            data: data.clone(),
        };
        let mut reversed: Vec<f64> = data.chunks_exact(2).rev().flatten().copied().collect();
        reversed.rotate_left(14);
        let mut b = Points {
            d: 2,
            data: reversed,
        };
        a.sort_rows();
        b.sort_rows();
        assert_eq!(a.data, b.data);
        let (ca, cb) = (
            kmeans(&a, 4, 3, 2, 100).unwrap(),
            kmeans(&b, 4, 3, 2, 100).unwrap(),
        );
        assert_eq!(ca.labels, cb.labels);
        assert_eq!(ca.total_inertia().to_bits(), cb.total_inertia().to_bits());
    }

    #[test]
    fn rejects_bad_input() {
        let p = blobs();
        assert!(kmeans(&p, 20, 0, 1, 10).is_err());
        assert!(kmeans(&p, 0, 0, 1, 10).is_err());
        let nan = Points {
            d: 1,
            data: vec![1.0, f64::NAN],
        };
        assert!(kmeans(&nan, 1, 0, 1, 10).is_err());
    }

    #[test]
    fn standardize_matches_population_std() {
        let mut p = Points {
            d: 1,
            data: vec![1.0, 2.0, 3.0, 4.0],
        };
        let (c, s) = p.standardize();
        assert_eq!(c, vec![2.5]);
        assert!((s[0] - 1.25f64.sqrt()).abs() < 1e-15);
        assert!((p.data.iter().sum::<f64>()).abs() < 1e-12);
    }
}
