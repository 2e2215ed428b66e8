"""Training small Keras recurrent models for rnn2c (subpackage `rnn2c.train`): classify,
regress, tag (a label per step) and forecast, into run folders that `rnn2c export` reads."""
