//! A series of numbers as one line of block characters, lowest to highest.

/// `values` as `▁▂▃▄▅▆▇█`, scaled from their minimum to their maximum (all `▁`
/// when they are equal).
pub fn sparkline(values: &[u64]) -> String {
    const BLOCKS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
    let (Some(&low), Some(&high)) = (values.iter().min(), values.iter().max()) else {
        return String::new();
    };
    let span = (high - low).max(1);
    values
        .iter()
        .map(|&v| {
            let step = (v - low) * 7 / span;
            BLOCKS[usize::try_from(step).unwrap_or(7).min(7)]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::sparkline;

    #[test]
    fn scales_from_lowest_to_highest() {
        assert_eq!(sparkline(&[10, 20, 80, 10]), "▁▂█▁");
        assert_eq!(sparkline(&[0, 1, 2, 3, 4, 5, 6, 7]), "▁▂▃▄▅▆▇█");
        assert_eq!(sparkline(&[5, 5]), "▁▁");
        assert_eq!(sparkline(&[]), "");
    }
}
