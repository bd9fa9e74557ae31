"""Write the project's labelled synthetic benchmark dataset (SeisBench format).

Same as ``seiscontrast synth``::

    python data_prep/make_synthetic.py data/synthetic --n-traces 20000 --seed 0
"""

import sys

from seiscontrast.cli import main

if __name__ == "__main__":
    sys.exit(main(["synth", *sys.argv[1:]]))
