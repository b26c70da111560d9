"""Progressive delivery: canary steps judged against the release serving beside them."""
