//! Softmax cross-entropy averaged over the batch, and correct predictions.

fn log_sum_exp(row: &[f64]) -> f64 {
    let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    m + row.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

/// Class probabilities of one row of logits.
pub fn softmax(row: &[f64]) -> Vec<f64> {
    let lse = log_sum_exp(row);
    row.iter().map(|v| (v - lse).exp()).collect()
}

/// The first maximum, as argmax.
pub fn predicted(row: &[f64]) -> usize {
    (1..row.len()).fold(0, |best, k| if row[k] > row[best] { k } else { best })
}

/// (mean loss, number correct).
pub fn forward(logits: &[f64], labels: &[u32], classes: usize) -> (f64, usize) {
    let rows = logits.chunks(classes);
    let loss: f64 = rows.clone().zip(labels).map(|(r, &l)| log_sum_exp(r) - r[l as usize]).sum();
    let correct = rows.zip(labels).filter(|(r, l)| predicted(r) == **l as usize).count();
    (loss / labels.len() as f64, correct)
}

/// d(mean loss) / d logits, the mean taken over `mean_over` images: these, or a step's
/// whole batch when these are a share of it.
pub fn backward(logits: &[f64], labels: &[u32], classes: usize, mean_over: usize) -> Vec<f64> {
    let n = mean_over as f64;
    logits
        .chunks(classes)
        .zip(labels)
        .flat_map(|(row, &label)| {
            let p = softmax(row);
            (0..classes).map(move |k| (p[k] - if k == label as usize { 1.0 } else { 0.0 }) / n)
        })
        .collect()
}
