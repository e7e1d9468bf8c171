//! Statistical tests of the DP-SGD mechanism: the noise has the calibrated scale, clipping is per member,
//! sampling has rate q, and everything replays from the seed.

use consentry_dp::{DpError, clip_and_noise, poisson_sample, seeded_rng};

fn norm(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// With zero gradients the output is pure noise: mean 0 and standard deviation σ·C per coordinate.
#[test]
fn empirical_noise_matches_sigma_times_clip() -> Result<(), DpError> {
    let dim = 200_000;
    for (sigma, clip, seed) in [(1.1, 1.0, 1u64), (4.0, 0.25, 2), (0.7, 3.0, 3)] {
        let zero = vec![0.0f32; dim];
        let members = vec![vec![zero.as_slice()]; 3];
        let out = clip_and_noise(&members, dim, clip, sigma, &mut seeded_rng(seed))?;
        let n = dim as f64;
        let mean = out.sum.iter().sum::<f64>() / n;
        let var = out.sum.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
        let (sd, want) = (var.sqrt(), sigma * clip);
        // Standard error of the sample sd is want/√(2n) ≈ 0.16 % of it; allow 6 of them (1 %).
        assert!((sd / want - 1.0).abs() < 0.01, "σ={sigma} C={clip}: sd {sd}, want {want}");
        // Standard error of the mean is want/√n; allow 6 of them.
        assert!(mean.abs() < 6.0 * want / n.sqrt(), "mean {mean}");
        // Gaussian shape: fraction within one sd ≈ 0.6827 (binomial se ≈ 0.001).
        let within = out.sum.iter().filter(|x| x.abs() <= want).count() as f64 / n;
        assert!((within - 0.682_689).abs() < 0.006, "within 1 sd: {within}");
    }
    Ok(())
}

/// A member with 1000 rows moves the sum no more than a member with one row: clipping is per member.
#[test]
fn clipping_is_per_member_not_per_row() -> Result<(), DpError> {
    let dim = 16;
    let clip = 1.0;
    let row: Vec<f32> = (0..dim).map(|i| 0.5 + i as f32 * 0.1).collect();
    let heavy: Vec<&[f32]> = vec![row.as_slice(); 1000];
    let light: Vec<&[f32]> = vec![row.as_slice()];
    let rng = &mut seeded_rng(0);
    let heavy_sum = clip_and_noise([heavy.clone()], dim, clip, 0.0, rng)?;
    let light_sum = clip_and_noise([light], dim, clip, 0.0, rng)?;
    assert!(norm(&heavy_sum.sum) <= clip * (1.0 + 1e-12), "{}", norm(&heavy_sum.sum));
    assert!(norm(&heavy_sum.sum) <= norm(&light_sum.sum) * (1.0 + 1e-12));
    assert_eq!(heavy_sum.clipped, 1);
    // Removing the heavy member from a batch changes the sum by at most C.
    let others: Vec<Vec<f64>> = (0..5).map(|m| (0..dim).map(|i| ((m * dim + i) as f64).sin()).collect()).collect();
    let with: Vec<Vec<&[f64]>> = others.iter().map(|o| vec![o.as_slice()]).collect();
    let heavy64: Vec<f64> = row.iter().map(|&x| f64::from(x)).collect();
    let mut with_heavy = with.clone();
    with_heavy.push(vec![heavy64.as_slice(); 1000]);
    let a = clip_and_noise(&with, dim, clip, 0.0, rng)?;
    let b = clip_and_noise(&with_heavy, dim, clip, 0.0, rng)?;
    let diff: Vec<f64> = a.sum.iter().zip(&b.sum).map(|(x, y)| x - y).collect();
    assert!(norm(&diff) <= clip * (1.0 + 1e-12), "sensitivity {}", norm(&diff));
    // A member under the norm passes through unscaled.
    let small = [0.1f32, 0.2];
    let s = clip_and_noise([[small.as_slice()]], 2, clip, 0.0, rng)?;
    assert_eq!(s.clipped, 0);
    assert!((s.sum[0] - 0.1).abs() < 1e-7 && (s.sum[1] - 0.2).abs() < 1e-7);
    Ok(())
}

#[test]
fn bad_gradients_are_refused() {
    let rng = &mut seeded_rng(0);
    let nan = [f32::NAN, 0.0];
    assert_eq!(
        clip_and_noise([[nan.as_slice()]], 2, 1.0, 1.0, rng).err(),
        Some(DpError::NonFiniteGradient { member: 0 })
    );
    let short = [1.0f32];
    assert_eq!(
        clip_and_noise([[short.as_slice()]], 2, 1.0, 1.0, rng).err(),
        Some(DpError::DimensionMismatch { expected: 2, got: 1 })
    );
    let ok = [1.0f32, 0.0];
    assert!(clip_and_noise([[ok.as_slice()]], 2, 0.0, 1.0, rng).is_err());
    assert!(clip_and_noise([[ok.as_slice()]], 2, 1.0, -1.0, rng).is_err());
}

/// Same seed, same batch and same noise, bit for bit.
#[test]
fn deterministic_given_seed() -> Result<(), DpError> {
    let g: Vec<Vec<f32>> = (0..10).map(|m| (0..8).map(|i| (m * 8 + i) as f32 / 7.0).collect()).collect();
    let run = |seed| -> Result<(Vec<usize>, Vec<f64>), DpError> {
        let mut rng = seeded_rng(seed);
        let batch = poisson_sample(10, 0.5, &mut rng)?;
        let members: Vec<Vec<&[f32]>> = batch.iter().map(|&m| vec![g[m].as_slice()]).collect();
        Ok((batch, clip_and_noise(&members, 8, 1.0, 1.0, &mut rng)?.sum))
    };
    assert_eq!(run(42)?, run(42)?);
    assert_ne!(run(42)?, run(43)?);
    Ok(())
}

/// Poisson sampling: each member independently with probability q.
#[test]
fn poisson_sampling_has_rate_q() -> Result<(), DpError> {
    let n = 1_000_000;
    for (q, seed) in [(0.01, 7u64), (0.3, 8), (256.0 / 60000.0, 9)] {
        let s = poisson_sample(n, q, &mut seeded_rng(seed))?;
        let mean = n as f64 * q;
        let sd = (n as f64 * q * (1.0 - q)).sqrt();
        assert!((s.len() as f64 - mean).abs() < 6.0 * sd, "q={q}: {} vs {mean}", s.len());
        assert!(s.windows(2).all(|w| w[0] < w[1]) && s.last().is_none_or(|&l| l < n));
    }
    // Each position is equally likely: over many draws of a small population every member's count ≈ q·draws.
    let (pop, q, draws) = (20, 0.2, 20_000);
    let mut counts = vec![0u32; pop];
    let mut rng = seeded_rng(10);
    for _ in 0..draws {
        for i in poisson_sample(pop, q, &mut rng)? {
            counts[i] += 1;
        }
    }
    let (mean, sd) = (draws as f64 * q, (draws as f64 * q * (1.0 - q)).sqrt());
    for (i, c) in counts.iter().enumerate() {
        assert!((f64::from(*c) - mean).abs() < 5.0 * sd, "member {i}: {c} vs {mean}");
    }
    assert_eq!(poisson_sample(5, 1.0, &mut rng)?, vec![0, 1, 2, 3, 4]);
    assert!(poisson_sample(5, 0.0, &mut rng)?.is_empty());
    assert!(poisson_sample(5, 1.5, &mut rng).is_err());
    Ok(())
}
