"""The pure core: numpy/pandas functions with no Spark import (tested without Spark)."""
