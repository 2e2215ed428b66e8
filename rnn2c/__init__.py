"""rnn2c: Keras recurrent networks to dependency-free int8 C99 for microcontrollers.

The top-level folders of the repository are the subpackages of this distribution:
``rnn2c.export`` (IR, quantizer, integer reference, renderer), ``rnn2c.emulator`` (host compile,
ctypes, comparison), ``rnn2c.train`` (training on sequence data) and ``rnn2c.firmware_templates``
(Jinja templates and the C runtime header).
"""

__version__ = "0.2.0"
