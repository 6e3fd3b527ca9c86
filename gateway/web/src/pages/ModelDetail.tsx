import { useState } from "react";
import { Link, useParams } from "react-router-dom";
import { useQuery } from "@tanstack/react-query";
import { api } from "../api";
import { describeError } from "../errors";
import { ErrorBox, Loading, fmt } from "../components/States";
import { Stars } from "./Models";
import { DownloadUrls, Model, SmokeSample } from "../types";
import { SmokeSamples, TryIt } from "./TryIt";
import { ExportPanel, Lineage, ServingChecks } from "../components/ModelLife";

function KeyValues({ data, testId }: { data: Record<string, unknown> | null; testId?: string }) {
  if (!data || !Object.keys(data).length) return <p className="muted">None recorded.</p>;
  return (
    <dl className="stats" data-testid={testId}>
      {Object.entries(data).map(([k, v]) => {
        const nested = v != null && typeof v === "object" && !Array.isArray(v);
        const long = typeof v === "string" && v.length > 60;
        return (
          <div key={k} className={nested || long ? "wide" : undefined}>
            <dt>{k.replace(/_/g, " ")}</dt>
            <dd>
              {nested ? (
                <KeyValues data={v as Record<string, unknown>} />
              ) : long ? (
                <pre className="code">{v as string}</pre>
              ) : typeof v === "number" ? (
                fmt.num(v)
              ) : v == null ? (
                "—"
              ) : typeof v === "object" ? (
                JSON.stringify(v)
              ) : (
                String(v)
              )}
            </dd>
          </div>
        );
      })}
    </dl>
  );
}

export function peftSnippet(baseModel: string, adapterDir = "./adapter"): string {
  return [
    "from transformers import AutoModelForCausalLM, AutoTokenizer",
    "from peft import PeftModel",
    "",
    `base = AutoModelForCausalLM.from_pretrained(${JSON.stringify(baseModel)})`,
    `tokenizer = AutoTokenizer.from_pretrained(${JSON.stringify(baseModel)})`,
    `model = PeftModel.from_pretrained(base, ${JSON.stringify(adapterDir)})  # the downloaded files`,
  ].join("\n");
}

export default function ModelDetail() {
  const { id } = useParams();
  const [downloadError, setDownloadError] = useState<string | null>(null);
  const [copied, setCopied] = useState(false);
  const q = useQuery({ queryKey: ["model", id], queryFn: () => api<{ model: Model }>(`/api/models/${id}`).then((r) => r.model) });
  if (q.isPending) return <Loading what="model" />;
  if (q.isError) return <ErrorBox error={q.error} retry={() => q.refetch()} />;
  const m = q.data;
  const files = Object.entries(m.artifacts ?? {});
  const baseModel = String(m.configuration?.base_model ?? m.configuration?.hyperparameters?.base_model ?? "<base model>");
  const snippet = peftSnippet(baseModel);
  const { smoke_samples: smokeSamples, ...quality } = m.quality_metrics ?? {};
  const download = async (file: string) => {
    setDownloadError(null);
    try {
      const r = await api<DownloadUrls>(`/api/models/${id}/download`, {
        method: "POST",
        json: { files: [file] },
      });
      const url = r.download_urls.find((u) => u.file === file)?.url;
      if (!url) throw new Error(`No download URL for ${file}`);
      const a = document.createElement("a");
      a.href = url;
      a.download = file;
      a.rel = "noopener";
      document.body.appendChild(a);
      a.click();
      a.remove();
    } catch (err) {
      setDownloadError(describeError(err, "Downloading"));
    }
  };
  return (
    <section>
      <div className="page-head">
        <h1>{m.name}</h1>
        <Stars n={m.quality_metrics?.overall_score} />
      </div>
      <p className="muted">
        version {m.version} · {fmt.date(m.created_at)} · from <Link to={`/training/jobs/${m.job_id}`}>its training job</Link>
        {" · "}
        <Link to={`/datasets/${m.dataset_id}`}>its dataset</Link>
      </p>
      <h2>Lineage</h2>
      <Lineage model={m} />
      <h2>Quality</h2>
      <KeyValues data={m.quality_metrics ? quality : null} testId="quality-metrics" />
      <h2>Samples from training</h2>
      <SmokeSamples samples={Array.isArray(smokeSamples) ? (smokeSamples as SmokeSample[]) : []} />
      <h2>Try it</h2>
      <TryIt modelId={m.id} />
      <h2>Serving</h2>
      <ServingChecks checks={m.serving} />
      <h2>Training summary</h2>
      <KeyValues data={m.training_summary} />
      <h2>Configuration</h2>
      <KeyValues data={m.configuration} />
      <h2>Files</h2>
      <table data-testid="model-files">
        <thead>
          <tr>
            <th>File</th>
            <th>Size</th>
            <th><span className="visually-hidden">Download</span></th>
          </tr>
        </thead>
        <tbody>
          {files.map(([name, f]) => (
            <tr key={name}>
              <td><code>{name}</code></td>
              <td>{fmt.bytes(f.size_bytes)}</td>
              <td>
                <button type="button" onClick={() => download(name)} aria-label={`Download ${name}`}>
                  Download
                </button>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {downloadError && <p className="error" role="alert">{downloadError}</p>}
      <h2>Merged export</h2>
      <ExportPanel modelId={m.id} />
      <h2>Load it with PEFT</h2>
      <pre className="code" data-testid="peft-snippet">{snippet}</pre>
      <button
        type="button"
        onClick={async () => {
          try {
            await navigator.clipboard.writeText(snippet);
            setCopied(true);
          } catch {
            setCopied(false);
          }
        }}
      >
        {copied ? "Copied" : "Copy snippet"}
      </button>
    </section>
  );
}
