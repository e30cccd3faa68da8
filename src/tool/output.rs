//! Printing answers: aligned text tables for people, JSON for scripts, on stdout; progress on
//! stderr.

use std::io::Write as _;

use anyhow::Context as _;
use serde::Serialize;

use super::args::Format;

/// Rows under a header, printed with columns aligned.
#[derive(Debug, Clone, Default)]
pub(crate) struct Table {
    header: Vec<&'static str>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub(crate) fn new(header: &[&'static str]) -> Table {
        Table {
            header: header.to_vec(),
            rows: Vec::new(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The table as text, one line per row, columns separated by at least two spaces.
    pub(crate) fn render(&self) -> String {
        let header: Vec<String> = self.header.iter().map(|h| (*h).to_owned()).collect();
        let lines: Vec<&Vec<String>> = std::iter::once(&header).chain(&self.rows).collect();
        let columns = lines.iter().map(|l| l.len()).max().unwrap_or(0);
        let widths: Vec<usize> = (0..columns)
            .map(|c| {
                lines
                    .iter()
                    .filter_map(|l| l.get(c))
                    .map(|cell| cell.chars().count())
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let mut out = String::new();
        for line in lines {
            let mut text = String::new();
            for (c, cell) in line.iter().enumerate() {
                if c + 1 == line.len() {
                    text.push_str(cell);
                } else {
                    let pad = widths[c] - cell.chars().count() + 2;
                    text.push_str(cell);
                    text.extend(std::iter::repeat_n(' ', pad));
                }
            }
            out.push_str(text.trim_end());
            out.push('\n');
        }
        out
    }
}

/// Writes `text` to stdout.
pub(crate) fn print(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .context("writing to stdout")
}

/// Prints `tables` (each after a blank line but the first) or `json`, as `format` says.
pub(crate) fn show(format: Format, tables: &[Table], json: &impl Serialize) -> anyhow::Result<()> {
    match format {
        Format::Table => {
            let text: Vec<String> = tables.iter().map(Table::render).collect();
            print(&text.join("\n"))
        }
        Format::Json => print_json(json),
    }
}

/// Prints `value` as one line of JSON.
pub(crate) fn print_json(value: &impl Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string(value).context("encoding JSON")?;
    text.push('\n');
    print(&text)
}

/// A progress line on stderr.
pub(crate) fn progress(text: &str) {
    let mut stderr = std::io::stderr().lock();
    // Progress is best effort: a closed stderr must not fail the command.
    let _ = writeln!(stderr, "{text}");
}

/// `[1, 2, 3]` as `1,2,3`.
pub(crate) fn ids(ids: &[i32]) -> String {
    ids.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_line_up() {
        let mut table = Table::new(&["TOPIC", "PARTITIONS"]);
        table.row(vec!["a-long-name".to_owned(), "3".to_owned()]);
        table.row(vec!["b".to_owned(), "12".to_owned()]);
        assert_eq!(
            table.render(),
            "TOPIC        PARTITIONS\na-long-name  3\nb            12\n"
        );
        assert_eq!(ids(&[1, 2, 3]), "1,2,3");
    }
}
