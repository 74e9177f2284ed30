"""What the pages, the API and the exports read: stored summaries kept current as predictions land
(aggregates), the common ground a leaderboard compares on, paired comparisons, the estimated figures of
adaptive runs, the page queries (selectors), downloads, and published results imported as baselines.
The maths is evaluation.stats'; here is where it meets the database."""
