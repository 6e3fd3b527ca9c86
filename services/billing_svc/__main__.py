from services.billing_svc.server import start
from services.common.runtime import run_main

run_main("billing_svc", start)
