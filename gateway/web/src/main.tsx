import { StrictMode, lazy, Suspense, useEffect } from "react";
import { createRoot } from "react-dom/client";
import { BrowserRouter, Navigate, Route, Routes, useLocation, useNavigate } from "react-router-dom";
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { adoptTokenFromFragment, getToken } from "./auth";
import { UNAUTHORIZED_EVENT } from "./api";
import { ApiError } from "./errors";
import { Layout } from "./components/Layout";
import { Loading } from "./components/States";
import { SignIn } from "./pages/SignIn";
import { DatasetsPage } from "./pages/Datasets";
import "./styles.css";

// Pages past the first are loaded when visited, keeping the initial bundle small.
const UploadPage = lazy(() => import("./pages/Upload"));
const DatasetDetail = lazy(() => import("./pages/DatasetDetail"));
const ConfigurePage = lazy(() => import("./pages/Configure"));
const JobsPage = lazy(() => import("./pages/Jobs"));
const JobMonitor = lazy(() => import("./pages/JobMonitor"));
const ModelsPage = lazy(() => import("./pages/Models"));
const ModelDetail = lazy(() => import("./pages/ModelDetail"));
const CostsPage = lazy(() => import("./pages/Costs"));

adoptTokenFromFragment();

const queryClient = new QueryClient({
  defaultOptions: {
    queries: {
      // 4xx answers are not retried: they will not change on their own.
      retry: (count, err) => !(err instanceof ApiError && err.status < 500) && count < 2,
      refetchOnWindowFocus: false,
    },
  },
});

function RequireToken({ children }: { children: JSX.Element }) {
  const location = useLocation();
  if (!getToken()) return <Navigate to="/signin" replace state={{ from: location.pathname + location.search }} />;
  return children;
}

function UnauthorizedListener() {
  const navigate = useNavigate();
  const location = useLocation();
  useEffect(() => {
    const onUnauthorized = () => {
      // Several requests can fail at once: the first one decides where to come back to.
      if (window.location.pathname === "/signin") return;
      queryClient.clear();
      navigate("/signin", { replace: true, state: { from: location.pathname + location.search } });
    };
    window.addEventListener(UNAUTHORIZED_EVENT, onUnauthorized);
    return () => window.removeEventListener(UNAUTHORIZED_EVENT, onUnauthorized);
  }, [navigate, location]);
  return null;
}

function App() {
  return (
    <BrowserRouter future={{ v7_startTransition: true, v7_relativeSplatPath: true }}>
      <UnauthorizedListener />
      <Suspense fallback={<Loading what="page" />}>
        <Routes>
          <Route path="/signin" element={<SignIn />} />
          <Route
            element={
              <RequireToken>
                <Layout />
              </RequireToken>
            }
          >
            <Route index element={<Navigate to="/datasets" replace />} />
            <Route path="/datasets" element={<DatasetsPage />} />
            <Route path="/datasets/upload" element={<UploadPage />} />
            <Route path="/datasets/:id" element={<DatasetDetail />} />
            <Route path="/training" element={<Navigate to="/training/jobs" replace />} />
            <Route path="/training/configure" element={<ConfigurePage />} />
            <Route path="/training/jobs" element={<JobsPage />} />
            <Route path="/training/jobs/:id" element={<JobMonitor />} />
            <Route path="/models" element={<ModelsPage />} />
            <Route path="/models/:id" element={<ModelDetail />} />
            <Route path="/costs" element={<CostsPage />} />
            <Route path="*" element={<p role="alert">Page not found.</p>} />
          </Route>
        </Routes>
      </Suspense>
    </BrowserRouter>
  );
}

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <App />
    </QueryClientProvider>
  </StrictMode>,
);
