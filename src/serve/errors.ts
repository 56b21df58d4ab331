// The one error shape of the REST API, `{"error": {"code": 404, "message": "...", "status": "NOT_FOUND"}}`:
// the HTTP status as `code` and its google.rpc.Code name as `status`, as the managed API answers.
const STATUS_NAME: Record<number, string> = {
  400: 'INVALID_ARGUMENT',
  401: 'UNAUTHENTICATED',
  404: 'NOT_FOUND',
  405: 'UNIMPLEMENTED',
  409: 'ALREADY_EXISTS',
  413: 'INVALID_ARGUMENT',
  500: 'INTERNAL',
};

/** An error the client caused (or may act on): answered with its HTTP status and one message. */
export class ApiError extends Error {
  constructor(
    readonly httpStatus: number,
    message: string,
    readonly statusName = STATUS_NAME[httpStatus] ?? 'UNKNOWN',
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export const badRequest = (m: string) => new ApiError(400, m);
export const notFound = (m: string) => new ApiError(404, m);
/** 409 for a resource in a state that forbids the call (in use, running, already uploaded). */
export const conflict = (m: string) => new ApiError(409, m, 'FAILED_PRECONDITION');
export const alreadyExists = (m: string) => new ApiError(409, m, 'ALREADY_EXISTS');

// The inference API's 404s, with OpenAI-style codes.
export const deploymentNotFound = (dep: string) =>
  new ApiError(404, `The deployment \`${dep}\` does not exist.`, 'deployment_not_found');
export const modelNotFound = (model: string) =>
  new ApiError(404, `The model \`${model}\` does not exist.`, 'model_not_found');
const HOW_TO_DEPLOY =
  '; create a deployment for it (POST /v1/accounts/ACCOUNT/deployments) or load it on one (POST /v1/accounts/ACCOUNT/deployedModels)';
/** `model` is not served (`on`: by that deployment; `hint`: say how to serve it). */
export const modelNotDeployed = (model: string, on = '', hint = false) =>
  new ApiError(
    404,
    `The model \`${model}\` is not deployed${on ? ` on ${on}` : ''}${hint ? HOW_TO_DEPLOY : ''}.`,
    'model_not_deployed',
  );

export function errorBody(e: ApiError): { error: { code: number; message: string; status: string } } {
  return { error: { code: e.httpStatus, message: e.message, status: e.statusName } };
}
