"""Training of filmcolor's own colouriser: data, film-domain augmentation, loss, resumable loop."""
