// An ERP connector's view of the Findity Expense API: HttpClient + Findity.Auth.FindityAuthHandler.
//
//   export FINDITY_BASE_URL=https://expense.findity.com FINDITY_CLIENT_ID=... \
//          FINDITY_CLIENT_SECRET=... FINDITY_USER_ID=E1234
//   mono Connector.exe        (or dotnet run, with a reference to the Findity.Auth package)
//
// Reads one employee's profile with that employee's token and the expense list with the
// organization's token. Tokens are fetched, cached, renewed and (on a 401) replaced by libfindity
// and the handler; the connector only builds its HttpClients. Exit code 0 on success, 1 on failure.

using System;
using System.Net.Http;
using System.Threading.Tasks;
using Findity.Auth;

internal static class Connector
{
    private static int Main()
    {
        return RunAsync().GetAwaiter().GetResult();
    }

    private static async Task<int> RunAsync()
    {
        string baseUrl = Environment.GetEnvironmentVariable("FINDITY_BASE_URL");
        string clientId = Environment.GetEnvironmentVariable("FINDITY_CLIENT_ID");
        string secret = Environment.GetEnvironmentVariable("FINDITY_CLIENT_SECRET");
        string userId = Environment.GetEnvironmentVariable("FINDITY_USER_ID");
        if (baseUrl == null || clientId == null || secret == null || userId == null)
        {
            Console.Error.WriteLine("Connector: set FINDITY_BASE_URL, FINDITY_CLIENT_ID, FINDITY_CLIENT_SECRET, FINDITY_USER_ID");
            return 2;
        }
        baseUrl = baseUrl.TrimEnd('/');

        // libfindity's lines (new tokens, renewals, failures), from any thread; never a secret or token.
        FindityAuth.SetLogger((level, line) => Console.Error.WriteLine("findity " + level + ": " + line));

        // One HttpClient per identity, kept for the life of the connector.
        using (var employee = new HttpClient(new FindityAuthHandler(baseUrl, clientId, secret, userId)))
        using (var organization = new HttpClient(new FindityAuthHandler(baseUrl, clientId, secret)))
        {
            try
            {
                // The answers are JSON such as {"subject":"user:E1234",...}.
                Console.WriteLine("/api/v1/me -> " + await employee.GetStringAsync(baseUrl + "/api/v1/me"));
                Console.WriteLine("/api/v1/expenses -> " + await organization.GetStringAsync(baseUrl + "/api/v1/expenses"));
            }
            catch (Exception e) when (e is FindityException || e is FindityArgumentException || e is HttpRequestException)
            {
                Console.Error.WriteLine("Connector: failed: " + e.Message); // never holds the secret or a token
                return 1;
            }
        }

        FindityStats stats = FindityAuth.Stats;
        Console.WriteLine("organization token valid for another {0:0} s; {1} token fetches, {2} cache hits",
            FindityAuth.TokenExpiresIn(baseUrl, clientId).TotalSeconds, stats.CacheMisses, stats.CacheHits);
        return 0;
    }
}
