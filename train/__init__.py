"""Training Keras RNN sequence classifiers for rnn2c (subpackage `rnn2c.train`)."""
