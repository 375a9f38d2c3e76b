//! The Models pane's state: the registry's models, the selection, load state and errors.

use super::loader::ModelRow;
use std::time::Instant;

#[derive(Debug, Default)]
pub struct ModelsState {
    pub rows: Vec<ModelRow>,
    pub selected: usize,
    pub scanning: bool,
    /// The model being loaded and since when.
    pub loading: Option<(String, Instant)>,
    /// The last load error, shown in the pane until the next load.
    pub error: Option<String>,
    /// The loaded model's name and how long it took to load.
    pub active: Option<String>,
    pub load_ms: Option<f64>,
    /// A pull from the hub in progress (or its last result).
    pub pull: Option<super::pull::PullState>,
}

impl ModelsState {
    /// A pull from the hub is downloading.
    pub fn pulling(&self) -> bool {
        self.pull.as_ref().is_some_and(|p| p.running())
    }

    pub fn select(&mut self, delta: i32) {
        if self.rows.is_empty() {
            return;
        }
        let n = self.rows.len() as i32;
        self.selected = (self.selected as i32 + delta).rem_euclid(n) as usize;
    }

    pub fn selected_row(&self) -> Option<&ModelRow> {
        self.rows.get(self.selected)
    }

    /// A model by name: exact, then a unique prefix, then a unique substring (as `-m`).
    pub fn find(&self, spec: &str) -> Result<usize, String> {
        let want = spec.to_lowercase();
        let tests: [&dyn Fn(&str) -> bool; 3] = [&|n| n == want, &|n| n.starts_with(&want), &|n| {
            n.contains(&want)
        }];
        for test in tests {
            let hits: Vec<usize> = (0..self.rows.len())
                .filter(|&i| test(&self.rows[i].name))
                .collect();
            match hits.len() {
                0 => continue,
                1 => return Ok(hits[0]),
                _ => {
                    let names: Vec<&str> =
                        hits.iter().map(|&i| self.rows[i].name.as_str()).collect();
                    return Err(format!(
                        "`{spec}` matches several models: {}; give more of the name",
                        names.join(", ")
                    ));
                }
            }
        }
        if self.rows.is_empty() {
            Err(format!(
                "no model named `{spec}`: no models were found; run `bash scripts/fetch-models.sh`"
            ))
        } else {
            let names: Vec<&str> = self.rows.iter().map(|r| r.name.as_str()).collect();
            Err(format!(
                "no model named `{spec}`; models: {}",
                names.join(", ")
            ))
        }
    }
}
