import { describe, expect, it } from "vitest";
import { ApiError, describeError, fieldErrors, mapToFormFields } from "./errors";
import { toApiError } from "./api";

describe("error mapping", () => {
  it("reads the gateway's error body into an ApiError", async () => {
    const res = new Response(JSON.stringify({ success: false, error: "Validation failed", details: { "hyperparameters.rank": ["Must be between 4 and 128"] } }), { status: 400 });
    const err = await toApiError(res);
    expect(err.status).toBe(400);
    expect(fieldErrors(err)).toEqual({ "hyperparameters.rank": ["Must be between 4 and 128"] });
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
    expect(describeError(new ApiError(404, "Not found", "Job not found"))).toMatch(/^Not found/);
    expect(describeError(new ApiError(409, "Conflict", "a job uses it"), "Deleting")).toBe(
      "Deleting conflicts with the current state: a job uses it",
    );
    expect(describeError(new ApiError(401, "Unauthorized", "Token has expired; sign in again"))).toMatch(/expired/);
    expect(describeError(new ApiError(400, "Validation failed", { rank: ["bad"] }))).toBe("Validation failed — rank: bad");
  });
});
