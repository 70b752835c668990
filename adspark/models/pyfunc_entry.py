"""MLflow "models from code" entry point of the adspark pyfunc (see :mod:`adspark.models.pyfunc`).

MLflow runs this file when it loads an adspark model; it only names the model class.
"""

import mlflow.models

from adspark.models.pyfunc import AdsparkPyfunc

mlflow.models.set_model(AdsparkPyfunc())
