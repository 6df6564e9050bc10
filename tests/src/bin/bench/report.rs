//! The results table, printed as Markdown at the end of the run (BENCHMARKS.md takes it).

/// One scenario's line.
pub struct Row {
    /// `S1`, `S3`, …
    pub id: String,
    /// What was measured.
    pub what: String,
    /// Parley's figure.
    pub parley: String,
    /// The limit measured in the same run.
    pub baseline: String,
    /// Parley / baseline (or the reverse for times, stated).
    pub ratio: String,
    /// The target.
    pub target: String,
    /// Whether the target was met.
    pub met: bool,
}

/// All rows, in run order.
#[derive(Default)]
pub struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Adds `row` and echoes it at once (the run is long).
    pub fn add(&mut self, row: Row) {
        println!(
            "{} {}: {} | baseline {} | {} | target {} {}",
            row.id,
            row.what,
            row.parley,
            row.baseline,
            row.ratio,
            row.target,
            if row.met { "(met)" } else { "(NOT met)" }
        );
        self.rows.push(row);
    }

    /// Prints the Markdown table.
    pub fn print(&self) {
        println!("| id | scenario | Parley | baseline (same run) | ratio | target | met |");
        println!("|----|----------|--------|---------------------|-------|--------|-----|");
        for r in &self.rows {
            println!(
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.id,
                r.what,
                r.parley,
                r.baseline,
                r.ratio,
                r.target,
                if r.met { "yes" } else { "**no**" }
            );
        }
    }
}
