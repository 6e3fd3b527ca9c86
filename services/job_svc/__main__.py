from services.common.runtime import run_main
from services.job_svc.server import start

run_main("job_svc", start)
