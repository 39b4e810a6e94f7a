use super::*;

#[test]
fn markers_are_filled_once_in_order_and_what_is_put_in_is_never_searched() {
    let t = "<a>/*X*/</a><b>/*Y*/</b>";
    assert_eq!(
        fill(t, &[("/*X*/", "/*Y*/"), ("/*Y*/", "2")]),
        "<a>/*Y*/</a><b>2</b>"
    );
}

#[test]
fn text_and_data_cannot_break_out_of_the_page() {
    assert_eq!(esc("<i>&\"'"), "&lt;i&gt;&amp;&quot;&#39;");
    let v = serde_json::json!({ "input": "</script><script>alert(1)" });
    let s = script_json(&v);
    assert!(!s.contains("</"), "{s}");
    assert_eq!(serde_json::from_str::<serde_json::Value>(&s).unwrap(), v);
}

#[test]
fn heat_is_green_for_gains_red_for_losses_and_stronger_further_from_zero() {
    assert_eq!(heat(1.0, 1.0), "rgba(63,182,139,0.68)");
    assert_eq!(heat(-0.5, 1.0), "rgba(255,91,91,0.38)");
    assert_eq!(heat(0.0, 0.0), "rgba(63,182,139,0.08)");
}

#[test]
fn a_sweep_page_without_two_axes_has_no_heatmap_and_escapes_its_cells() {
    let head: Vec<String> = ["k", "final_pnl"].map(String::from).to_vec();
    let body = vec![vec!["<b>".to_string(), "1.50".to_string()]];
    let page = sweep_page("in.jsonl", &head, &body);
    assert!(!page.contains("id=\"heatmap\""));
    assert!(page.contains("<td>&lt;b&gt;</td>"));
    assert!(page.contains(">1.50</td>"));
}

#[test]
fn the_heatmap_takes_the_best_over_other_axes_and_orders_numbers_numerically() {
    let head: Vec<String> = ["a", "b", "c", "final_pnl"].map(String::from).to_vec();
    let row = |a: &str, b: &str, c: &str, p: &str| [a, b, c, p].map(String::from).to_vec();
    let body = vec![
        row("10", "1", "x", "2.00"),
        row("10", "1", "y", "-1.00"),
        row("9", "1", "x", "0.50"),
    ];
    let page = sweep_page("in", &head, &body);
    let heat = &page[page.find("id=\"heatmap\"").unwrap()..page.find("id=\"runs\"").unwrap()];
    assert!(page.contains("the best over the other axes"));
    assert_eq!(heat.matches("class=\"cell\"").count(), 2);
    assert!(heat.contains(">2.00</td>") && !heat.contains(">-1.00</td>"));
    assert!(heat.find("<th>9</th>").unwrap() < heat.find("<th>10</th>").unwrap());
}
