"""Reports: self-contained HTML pages from run and bench folders."""
