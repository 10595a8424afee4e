//! Nelder–Mead minimisation, used for the maximum-likelihood fits (on log-parameters, so every parameter
//! stays positive). Deterministic; restarts from its own best point until the simplex stops improving.

pub struct Minimum {
    pub x: Vec<f64>,
    pub value: f64,
    pub converged: bool,
    pub evaluations: usize,
}

pub fn nelder_mead(
    f: impl Fn(&[f64]) -> f64,
    start: &[f64],
    tolerance: f64,
    max_evaluations: usize,
) -> Minimum {
    let n = start.len();
    let evaluations = std::cell::Cell::new(0usize);
    let eval = |x: &[f64]| {
        evaluations.set(evaluations.get() + 1);
        let v = f(x);
        if v.is_nan() {
            f64::INFINITY
        } else {
            v
        }
    };
    let mut best = start.to_vec();
    let mut best_value = eval(&best);
    let mut converged = false;
    // a few restarts guard against a collapsed simplex stopping short of the optimum
    for _restart in 0..8 {
        let mut simplex: Vec<(Vec<f64>, f64)> = vec![(best.clone(), best_value)];
        for i in 0..n {
            let mut p = best.clone();
            p[i] += if p[i].abs() > 1e-3 {
                0.1 * p[i].abs().max(0.5)
            } else {
                0.25
            };
            let v = eval(&p);
            simplex.push((p, v));
        }
        loop {
            crate::interrupt::check();
            simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
            let spread = (simplex[n].1 - simplex[0].1).abs();
            let size = simplex[1..]
                .iter()
                .map(|(p, _)| dist(p, &simplex[0].0))
                .fold(0.0, f64::max);
            if (spread <= tolerance * (1.0 + simplex[0].1.abs()) && size <= 1e-9)
                || evaluations.get() >= max_evaluations
            {
                break;
            }
            let centroid: Vec<f64> = (0..n)
                .map(|j| simplex[..n].iter().map(|(p, _)| p[j]).sum::<f64>() / n as f64)
                .collect();
            let along = |t: f64| -> Vec<f64> {
                (0..n)
                    .map(|j| centroid[j] + t * (simplex[n].0[j] - centroid[j]))
                    .collect()
            };
            let reflected = along(-1.0);
            let fr = eval(&reflected);
            if fr < simplex[0].1 {
                let expanded = along(-2.0);
                let fe = eval(&expanded);
                simplex[n] = if fe < fr {
                    (expanded, fe)
                } else {
                    (reflected, fr)
                };
            } else if fr < simplex[n - 1].1 {
                simplex[n] = (reflected, fr);
            } else {
                let contracted = if fr < simplex[n].1 {
                    along(-0.5)
                } else {
                    along(0.5)
                };
                let fc = eval(&contracted);
                if fc < simplex[n].1.min(fr) {
                    simplex[n] = (contracted, fc);
                } else {
                    let best_point = simplex[0].0.clone();
                    for item in simplex.iter_mut().skip(1) {
                        let p: Vec<f64> = (0..n)
                            .map(|j| best_point[j] + 0.5 * (item.0[j] - best_point[j]))
                            .collect();
                        let v = eval(&p);
                        *item = (p, v);
                    }
                }
            }
        }
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let improved = best_value - simplex[0].1 > tolerance * (1.0 + best_value.abs());
        best = simplex[0].0.clone();
        best_value = simplex[0].1;
        if evaluations.get() >= max_evaluations {
            break;
        }
        if !improved {
            converged = best_value.is_finite();
            break;
        }
    }
    Minimum {
        x: best,
        value: best_value,
        converged,
        evaluations: evaluations.get(),
    }
}

fn dist(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_rosenbrock_minimum() {
        let rosen = |x: &[f64]| (1.0 - x[0]).powi(2) + 100.0 * (x[1] - x[0] * x[0]).powi(2);
        let m = nelder_mead(rosen, &[-1.2, 1.0], 1e-14, 20_000);
        assert!(m.converged);
        assert!(
            (m.x[0] - 1.0).abs() < 1e-5 && (m.x[1] - 1.0).abs() < 1e-5,
            "{:?}",
            m.x
        );
    }
}
