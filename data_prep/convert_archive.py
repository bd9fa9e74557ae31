"""Convert a miniSEED archive (optionally with picks) into a SeisBench-format dataset.

Same as ``seiscontrast convert``; kept as a script for batch jobs::

    python data_prep/convert_archive.py /data/archive --out /data/my_dataset --picks picks.csv
"""

import sys

from seiscontrast.cli import main

if __name__ == "__main__":
    sys.exit(main(["convert", *sys.argv[1:]]))
