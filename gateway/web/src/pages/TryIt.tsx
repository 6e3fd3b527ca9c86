import { FormEvent, useState } from "react";
import { api } from "../api";
import { describeError } from "../errors";
import { Generation, SmokeSample } from "../types";

/** The bounds POST /api/models/{id}/generate enforces (services/common/sampling.py); the form only mirrors them. */
const MAX_PROMPT_CHARACTERS = 4000;
const MAX_NEW_TOKENS = 512;

/** "Try it": one prompt answered by the model (run by a trainer agent), and by its base model alone when asked. */
export function TryIt({ modelId }: { modelId: string }) {
  const [prompt, setPrompt] = useState("");
  const [maxNewTokens, setMaxNewTokens] = useState(128);
  const [temperature, setTemperature] = useState(0);
  const [includeBase, setIncludeBase] = useState(false);
  const [busy, setBusy] = useState(false);
  const [answer, setAnswer] = useState<Generation | null>(null);
  const [error, setError] = useState<string | null>(null);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setAnswer(
        await api<Generation>(`/api/models/${modelId}/generate`, {
          method: "POST",
          json: { prompts: [prompt], max_new_tokens: maxNewTokens, temperature, include_base: includeBase },
        }),
      );
    } catch (err) {
      setError(describeError(err, "Generating")); // names the field of a 400, says when no agent is free
    } finally {
      setBusy(false);
    }
  };

  return (
    <form onSubmit={submit} data-testid="try-it">
      <label htmlFor="try-prompt">Prompt</label>
      <textarea
        id="try-prompt"
        rows={3}
        maxLength={MAX_PROMPT_CHARACTERS}
        value={prompt}
        onChange={(e) => setPrompt(e.target.value)}
      />
      <div className="row">
        <label htmlFor="try-max-tokens">Max new tokens</label>
        <input
          id="try-max-tokens"
          type="number"
          min={1}
          max={MAX_NEW_TOKENS}
          value={maxNewTokens}
          onChange={(e) => setMaxNewTokens(Number(e.target.value))}
        />
        <label htmlFor="try-temperature">Temperature</label>
        <input
          id="try-temperature"
          type="number"
          min={0}
          max={2}
          step={0.1}
          value={temperature}
          onChange={(e) => setTemperature(Number(e.target.value))}
        />
        <label>
          <input type="checkbox" checked={includeBase} onChange={(e) => setIncludeBase(e.target.checked)} /> Compare
          with the base model
        </label>
      </div>
      <button type="submit" disabled={busy || !prompt.trim()}>
        {busy ? "Generating…" : "Generate"}
      </button>
      {error && <p className="error" role="alert">{error}</p>}
      {answer?.results.map((r, i) => (
        <dl className="stats" key={i} data-testid="try-it-answer">
          <div className="wide">
            <dt>this model</dt>
            <dd><pre className="code">{r.completion}</pre></dd>
          </div>
          {r.base_completion !== undefined && (
            <div className="wide">
              <dt>base model alone</dt>
              <dd><pre className="code">{r.base_completion}</pre></dd>
            </div>
          )}
        </dl>
      ))}
    </form>
  );
}

/** The held-out validation conversations the model answered when it was trained. */
export function SmokeSamples({ samples }: { samples: SmokeSample[] }) {
  if (!samples.length) return <p className="muted">None recorded (the dataset had no validation split).</p>;
  return (
    <table data-testid="smoke-samples">
      <thead>
        <tr>
          <th>Prompt</th>
          <th>Expected</th>
          <th>This model</th>
          <th>Base model alone</th>
        </tr>
      </thead>
      <tbody>
        {samples.map((s, i) => (
          <tr key={i}>
            <td>{s.prompt}</td>
            <td>{s.expected}</td>
            <td>{s.completion}</td>
            <td>{s.base_completion}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
