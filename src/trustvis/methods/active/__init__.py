"""Active learning: classifiers that choose which unlabelled images to label next (task ``active``).

base.py       the active learner (classifier with stage features, dropout head) and the query interface
baselines.py  random, entropy, margin, bald (MC dropout), coreset (k-center greedy)
vabal.py      VaB-AL (seed method): a class-chunked VAE on deep features, class prior and difficulty
"""
