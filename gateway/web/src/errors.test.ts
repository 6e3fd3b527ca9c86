import { describe, expect, it } from "vitest";
import { ApiError, describeError, errorFromBody, fieldErrors, isNotFound, mapToFormFields } from "./errors";
import { toApiError } from "./api";

describe("error mapping", () => {
  it("reads the gateway's error body, its code among it, into an ApiError", async () => {
    const res = new Response(
      JSON.stringify({
        success: false, error: "Validation error", code: "validation_failed",
        details: { "hyperparameters.rank": ["Must be between 4 and 128"] },
      }),
      { status: 400 },
    );
    const err = await toApiError(res);
    expect(err.status).toBe(400);
    expect(err.code).toBe("validation_failed");
    expect(fieldErrors(err)).toEqual({ "hyperparameters.rank": ["Must be between 4 and 128"] });
  });

  it("gives an answer without a code (a proxy's, say) the code of its status", async () => {
    const err = await toApiError(new Response("<html>bad gateway</html>", { status: 503, statusText: "Service Unavailable" }));
    expect(err.code).toBe("unavailable");
    expect(describeError(err)).toMatch(/unavailable right now/);
  });

  it("maps dotted server fields onto the form's fields, the rest to the form", () => {
    const mapped = mapToFormFields(
      {
        "hyperparameters.learning_rate": ["too high"],
        "gpu_config.count": ["at most 1"],
        "hyperparameters.base_model": ["does not exist"],
      },
      ["learning_rate", "gpu_count", "gpu_type"],
    );
    expect(mapped).toEqual({
      learning_rate: ["too high"],
      gpu_count: ["at most 1"],
      _form: ["hyperparameters.base_model: does not exist"],
    });
  });

  it("says what a 404, 409 and 401 mean for a person", () => {
    expect(describeError(new ApiError(404, "Not found", "Job not found", "not_found"))).toMatch(/^Not found/);
    expect(describeError(new ApiError(409, "Conflict", "a job uses it", "conflict"), "Deleting")).toBe(
      "Deleting conflicts with the current state: a job uses it",
    );
    expect(describeError(new ApiError(401, "Unauthorized", "Token has expired; sign in again", "unauthenticated"))).toMatch(/expired/);
    expect(describeError(new ApiError(400, "Validation failed", { rank: ["bad"] }, "validation_failed"))).toBe(
      "Validation failed — rank: bad",
    );
  });

  it("decides by code, not status: a 409 over budget names the figures, a 400 failed precondition its reason", () => {
    const budget = new ApiError(409, "Over budget", { estimated_cost: 5, remaining: 1.5, budget: 20, month: "2026-12" }, "budget_exceeded");
    expect(describeError(budget, "Launching")).toBe(
      "Over your monthly budget: this costs about $5.00 and $1.50 of the $20.00 budget for 2026-12 remains. " +
        "Raise the budget or choose a cheaper configuration.",
    );
    const notReady = new ApiError(400, "Dataset is not ready", "status validating", "failed_precondition");
    expect(describeError(notReady)).toBe("Dataset is not ready — status validating");
    expect(isNotFound(notReady)).toBe(false);
  });

  it("shows an id in the address that is not a UUID (a 400 naming id) as not found", () => {
    const err = new ApiError(400, "Validation error", { id: ["Must be a UUID such as 6f1c1a2e-…, got 'nope'"] }, "validation_failed");
    expect(isNotFound(err)).toBe(true);
    expect(describeError(err)).toMatch(/^Not found: the address's id is not a valid id \(Must be a UUID/);
    // A body field named like it is still a field error.
    const body = new ApiError(400, "Validation error", { id: ["x"], name: ["y"] }, "validation_failed");
    expect(isNotFound(body)).toBe(false);
    expect(isNotFound(new ApiError(404, "Not found", null, "not_found"))).toBe(true);
  });

  it("reads an error body sent as text (a stream's refusal or its error event)", () => {
    const err = errorFromBody(404, JSON.stringify({ success: false, error: "Job not found", details: null, code: "not_found" }));
    expect([err.status, err.code, err.error]).toEqual([404, "not_found", "Job not found"]);
    expect(errorFromBody(502, "upstream down").details).toBe("upstream down");
  });
});
