//! The table viewer of COMMANDS.md §0.2: aligned columns, 50 rows a page, Enter (or any
//! answer) for the next page and `q` to stop.

use super::CmdCtx;

/// Rows per page.
pub(crate) const PAGE_ROWS: usize = 50;

/// Formats rows under a header as aligned columns.
pub(crate) fn render(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let mut out = String::new();
        for (cell, w) in cells.zip(&widths) {
            out.push_str(&format!("{cell:<w$}  "));
        }
        out.truncate(out.trim_end().len());
        out.push('\n');
        out
    };
    let mut out = line(&mut header.iter().copied());
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
    out
}

/// Shows `rows` page by page, waiting for an answer between pages.
pub(crate) async fn show_table(ctx: &mut CmdCtx, header: &[&str], rows: Vec<Vec<String>>) {
    if rows.is_empty() {
        ctx.text("No matching rows.\n").await;
        return;
    }
    let pages: Vec<&[Vec<String>]> = rows.chunks(PAGE_ROWS).collect();
    for (idx, page) in pages.iter().enumerate() {
        ctx.big_text(&render(header, page)).await;
        if idx + 1 == pages.len() {
            break;
        }
        ctx.text(&format!(
            "page {} of {}; press Enter for more or q to quit: ",
            idx + 1,
            pages.len()
        ))
        .await;
        match ctx.next_text().await {
            Some(answer) if answer.trim().eq_ignore_ascii_case("q") => break,
            Some(_) => {}
            None => break,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align() {
        let out = render(
            &["name", "rank"],
            &[
                vec!["admin".into(), "1".into()],
                vec!["a".into(), "20".into()],
            ],
        );
        assert_eq!(out, "name   rank\nadmin  1\na      20\n");
    }
}
