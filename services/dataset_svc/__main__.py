from services.common.runtime import run_main
from services.dataset_svc.server import start

run_main("dataset_svc", start)
