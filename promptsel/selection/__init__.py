"""One selection: a request resolved into inputs, scored into a ScoreTable, ranked by the methods
and summarised in a report."""
