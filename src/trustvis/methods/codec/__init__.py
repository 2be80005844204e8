"""Neural and classic image codecs (EQLINR, COOL-CHIC) and the Pillow baselines."""
